-- A row any of whose attempts succeeded is paid: it is never planned again
-- and never gives up its risk key, whatever its state says later (an earlier
-- attempt reported paid after the row failed, say). The ledger code checks
-- this too; the triggers hold it for any other writer.
CREATE TRIGGER rows_paid_never_planned BEFORE UPDATE OF state ON rows
WHEN NEW.state = 'planned' AND OLD.state <> 'planned'
	AND EXISTS (SELECT 1 FROM attempts WHERE row_id = NEW.id AND state = 'succeeded')
BEGIN
	SELECT RAISE(ABORT, 'a row with a succeeded attempt is never planned again');
END;

CREATE TRIGGER rows_paid_keep_risk_key BEFORE UPDATE OF risk_key ON rows
WHEN NEW.risk_key IS NULL AND OLD.risk_key IS NOT NULL
	AND EXISTS (SELECT 1 FROM attempts WHERE row_id = NEW.id AND state = 'succeeded')
BEGIN
	SELECT RAISE(ABORT, 'a row with a succeeded attempt keeps its risk key');
END;

CREATE TRIGGER attempts_succeeded_is_final BEFORE UPDATE OF state ON attempts
WHEN OLD.state = 'succeeded' AND NEW.state <> 'succeeded'
BEGIN
	SELECT RAISE(ABORT, 'a succeeded attempt is final');
END;
