-- The abandoned-checkout sweep leaves alone a pending order whose payment event has already
-- arrived (its run may still be retrying an outage): this finds such an event by order.
CREATE INDEX webhook_inbox_paid_order_idx
    ON webhook_inbox ((inngest_event -> 'data' ->> 'orderId'))
    WHERE inngest_event ->> 'name' IN
        ('stripe/checkout.session.completed', 'paypal/payment.capture.completed');
