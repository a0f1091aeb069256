-- Schema version 3 (PostgreSQL): a row any of whose attempts succeeded is
-- paid: it is never planned again and never gives up its risk key, whatever
-- its state says later (../0003_paid_rows.sql). A trigger's WHEN cannot hold
-- a subquery in PostgreSQL, so the functions look at the attempts.

CREATE FUNCTION payouts_row_paid_guard() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
	IF EXISTS (SELECT 1 FROM attempts WHERE row_id = NEW.id AND state = 'succeeded') THEN
		RAISE EXCEPTION '%', TG_ARGV[0] USING ERRCODE = 'integrity_constraint_violation';
	END IF;
	RETURN NEW;
END;
$$;

CREATE TRIGGER rows_paid_never_planned BEFORE UPDATE OF state ON rows
FOR EACH ROW WHEN (NEW.state = 'planned' AND OLD.state <> 'planned')
EXECUTE FUNCTION payouts_row_paid_guard('a row with a succeeded attempt is never planned again');

CREATE TRIGGER rows_paid_keep_risk_key BEFORE UPDATE OF risk_key ON rows
FOR EACH ROW WHEN (NEW.risk_key IS NULL AND OLD.risk_key IS NOT NULL)
EXECUTE FUNCTION payouts_row_paid_guard('a row with a succeeded attempt keeps its risk key');

CREATE TRIGGER attempts_succeeded_is_final BEFORE UPDATE OF state ON attempts
FOR EACH ROW WHEN (OLD.state = 'succeeded' AND NEW.state <> 'succeeded')
EXECUTE FUNCTION payouts_refuse('a succeeded attempt is final');
