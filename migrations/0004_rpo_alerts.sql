-- RPO breach alerts of the daemon: per plan and region, whether the RPO
-- exposure was over the objective when the daemon last looked, and since
-- when. A transition is written here before its notification is queued,
-- so a restarted daemon neither repeats a notification nor misses one.
CREATE TABLE rpo_alerts (
    plan      TEXT    NOT NULL,
    region    TEXT    NOT NULL,
    breached  INTEGER NOT NULL,             -- 1 over the objective, 0 within
    since     INTEGER NOT NULL,             -- when that state began
    PRIMARY KEY (plan, region)
) WITHOUT ROWID;
