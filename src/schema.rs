// @generated automatically by Diesel CLI.

diesel::table! {
    chargebacks (id) {
        id -> Uuid,
        payment_id -> Uuid,
        provider_chargeback_id -> Text,
        amount -> Numeric,
        created_at -> Timestamptz,
    }
}

diesel::table! {
    dashboard_access (id) {
        id -> Uuid,
        user_id -> Uuid,
        mentor_id -> Uuid,
        session_pack_id -> Uuid,
        status -> Text,
        granted_until -> Timestamptz,
        granted_at -> Timestamptz,
        revoked_at -> Nullable<Timestamptz>,
        revoke_reason -> Nullable<Text>,
    }
}

diesel::table! {
    discord_connections (user_id) {
        user_id -> Uuid,
        discord_user_id -> Text,
        discord_username -> Text,
        connected_at -> Timestamptz,
    }
}

diesel::table! {
    email_log (id) {
        id -> Uuid,
        user_id -> Nullable<Uuid>,
        to_address -> Text,
        kind -> Text,
        idempotency_key -> Text,
        provider_message_id -> Nullable<Text>,
        status -> Text,
        sent_at -> Timestamptz,
        updated_at -> Timestamptz,
    }
}

diesel::table! {
    email_suppressions (address) {
        address -> Text,
        reason -> Text,
        created_at -> Timestamptz,
    }
}

diesel::table! {
    mentors (id) {
        id -> Uuid,
        display_name -> Text,
        email -> Text,
        seat_capacity -> Int4,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
        clerk_id -> Nullable<Text>,
    }
}

diesel::table! {
    mentorship_products (id) {
        id -> Uuid,
        mentor_id -> Uuid,
        name -> Text,
        kind -> Text,
        price -> Numeric,
        currency -> Text,
        sessions_per_pack -> Int4,
        validity_days -> Int4,
        active -> Bool,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
    }
}

diesel::table! {
    oauth_states (state_hash) {
        state_hash -> Text,
        user_id -> Uuid,
        expires_at -> Timestamptz,
        used_at -> Nullable<Timestamptz>,
        created_at -> Timestamptz,
    }
}

diesel::table! {
    onboarding_outcomes (order_id) {
        order_id -> Uuid,
        user_id -> Uuid,
        outcome -> Text,
        recorded_at -> Timestamptz,
    }
}

diesel::table! {
    orders (id) {
        id -> Uuid,
        user_id -> Uuid,
        product_id -> Uuid,
        provider -> Text,
        status -> Text,
        currency -> Text,
        total_amount -> Numeric,
        original_amount -> Nullable<Numeric>,
        discount_amount -> Nullable<Numeric>,
        discount_code -> Nullable<Text>,
        refunded_amount -> Numeric,
        provider_checkout_id -> Nullable<Text>,
        checkout_expires_at -> Timestamptz,
        paid_at -> Nullable<Timestamptz>,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
    }
}

diesel::table! {
    payment_mismatches (id) {
        id -> Uuid,
        order_id -> Uuid,
        provider -> Text,
        provider_payment_id -> Text,
        provider_checkout_id -> Text,
        reason -> Text,
        expected_amount -> Numeric,
        expected_currency -> Text,
        paid_amount -> Numeric,
        paid_original_amount -> Numeric,
        paid_discount_amount -> Numeric,
        paid_currency -> Text,
        detected_at -> Timestamptz,
    }
}

diesel::table! {
    payments (id) {
        id -> Uuid,
        order_id -> Uuid,
        provider -> Text,
        provider_payment_id -> Text,
        amount -> Numeric,
        currency -> Text,
        status -> Text,
        refunded_amount -> Numeric,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
        disputed_amount -> Numeric,
    }
}

diesel::table! {
    seat_offers (id) {
        id -> Uuid,
        seat_id -> Uuid,
        mentor_id -> Uuid,
        entry_id -> Uuid,
        user_id -> Uuid,
        previous_offer_id -> Nullable<Uuid>,
        status -> Text,
        expires_at -> Timestamptz,
        order_id -> Nullable<Uuid>,
        closed_at -> Nullable<Timestamptz>,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
    }
}

diesel::table! {
    seat_reservations (id) {
        id -> Uuid,
        mentor_id -> Uuid,
        user_id -> Uuid,
        order_id -> Uuid,
        session_pack_id -> Nullable<Uuid>,
        status -> Text,
        hold_expires_at -> Nullable<Timestamptz>,
        seat_expires_at -> Nullable<Timestamptz>,
        grace_period_ends_at -> Nullable<Timestamptz>,
        released_at -> Nullable<Timestamptz>,
        release_reason -> Nullable<Text>,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
        renews_seat_id -> Nullable<Uuid>,
    }
}

diesel::table! {
    session_packs (id) {
        id -> Uuid,
        user_id -> Uuid,
        mentor_id -> Uuid,
        product_id -> Uuid,
        payment_id -> Uuid,
        total_sessions -> Int4,
        remaining_sessions -> Int4,
        status -> Text,
        expires_at -> Timestamptz,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
    }
}

diesel::table! {
    sessions (id) {
        id -> Uuid,
        session_pack_id -> Uuid,
        scheduled_at -> Timestamptz,
        status -> Text,
        completed_at -> Nullable<Timestamptz>,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
        mentor_id -> Uuid,
        cancelled_at -> Nullable<Timestamptz>,
        counted_at -> Nullable<Timestamptz>,
    }
}

diesel::table! {
    users (id) {
        id -> Uuid,
        clerk_id -> Text,
        email -> Nullable<Text>,
        first_name -> Nullable<Text>,
        last_name -> Nullable<Text>,
        deleted_at -> Nullable<Timestamptz>,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
    }
}

diesel::table! {
    waitlist_entries (id) {
        id -> Uuid,
        mentor_id -> Uuid,
        user_id -> Uuid,
        status -> Text,
        joined_at -> Timestamptz,
        left_at -> Nullable<Timestamptz>,
        updated_at -> Timestamptz,
    }
}

diesel::table! {
    webhook_inbox (id) {
        id -> Uuid,
        provider -> Text,
        provider_event_id -> Text,
        event_type -> Text,
        payload -> Jsonb,
        inngest_event -> Nullable<Jsonb>,
        received_at -> Timestamptz,
        forwarded_at -> Nullable<Timestamptz>,
        forward_attempts -> Int4,
        next_attempt_at -> Timestamptz,
        last_error -> Nullable<Text>,
    }
}

diesel::joinable!(dashboard_access -> mentors (mentor_id));
diesel::joinable!(dashboard_access -> session_packs (session_pack_id));
diesel::joinable!(dashboard_access -> users (user_id));
diesel::joinable!(discord_connections -> users (user_id));
diesel::joinable!(sessions -> mentors (mentor_id));
diesel::joinable!(email_log -> users (user_id));
diesel::joinable!(mentorship_products -> mentors (mentor_id));
diesel::joinable!(oauth_states -> users (user_id));
diesel::joinable!(onboarding_outcomes -> orders (order_id));
diesel::joinable!(onboarding_outcomes -> users (user_id));
diesel::joinable!(orders -> mentorship_products (product_id));
diesel::joinable!(orders -> users (user_id));
diesel::joinable!(payment_mismatches -> orders (order_id));
diesel::joinable!(payments -> orders (order_id));
diesel::joinable!(seat_offers -> mentors (mentor_id));
diesel::joinable!(seat_offers -> orders (order_id));
diesel::joinable!(seat_offers -> seat_reservations (seat_id));
diesel::joinable!(seat_offers -> users (user_id));
diesel::joinable!(seat_offers -> waitlist_entries (entry_id));
diesel::joinable!(seat_reservations -> mentors (mentor_id));
diesel::joinable!(seat_reservations -> orders (order_id));
diesel::joinable!(seat_reservations -> session_packs (session_pack_id));
diesel::joinable!(seat_reservations -> users (user_id));
diesel::joinable!(session_packs -> mentors (mentor_id));
diesel::joinable!(session_packs -> mentorship_products (product_id));
diesel::joinable!(chargebacks -> payments (payment_id));
diesel::joinable!(session_packs -> payments (payment_id));
diesel::joinable!(session_packs -> users (user_id));
diesel::joinable!(sessions -> session_packs (session_pack_id));
diesel::joinable!(waitlist_entries -> mentors (mentor_id));
diesel::joinable!(waitlist_entries -> users (user_id));

diesel::allow_tables_to_appear_in_same_query!(
    chargebacks,
    dashboard_access,
    discord_connections,
    email_log,
    email_suppressions,
    mentors,
    mentorship_products,
    oauth_states,
    onboarding_outcomes,
    orders,
    payment_mismatches,
    payments,
    seat_offers,
    seat_reservations,
    session_packs,
    sessions,
    users,
    waitlist_entries,
    webhook_inbox,
);
