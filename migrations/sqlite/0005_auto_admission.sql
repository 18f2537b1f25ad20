-- The automatic admission valve (SetAdmission's `auto`): 1 when the server finds the number of
-- fans buying at once from the sales path's feedback, with max_active and rate_per_minute as
-- caps; 0 when the operator's figures are the valve.
ALTER TABLE events ADD COLUMN admission_auto BIGINT NOT NULL DEFAULT 0;
