DROP TABLE onboarding_outcomes;
DROP TABLE email_suppressions;
DROP TABLE email_log;
DROP TABLE dashboard_access;
DROP TABLE oauth_states;
DROP TABLE discord_connections;
