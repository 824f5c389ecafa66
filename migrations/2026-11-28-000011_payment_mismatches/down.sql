DROP TABLE payment_mismatches;
