package queue

// The tables and indexes of the console's read side, beside the events
// table and River's (see migrate).
//
//   - stairhook_refused: the last MaxRefused refused requests (see
//     Recorder.Refused); the names of the signature headers present, never
//     their values.
//   - stairhook_key_use: per webhook, key label and hour, how many requests
//     the key verified and when it last did (see Recorder.KeyUsed).
//   - stairhook_job_event: River's jobs by the event id in their
//     arguments, so an event's jobs are found without reading every job (the
//     events page, the event detail, and the clean-up's check of an event's
//     jobs).
//   - stairhook_events_id: the events by id alone, for a search by id
//     across webhooks.
//
// Each index costs one more entry per insert on the accept path; the
// receiver's accept benchmarks measure it.
const (
	sqliteConsoleSchema = `CREATE TABLE IF NOT EXISTS stairhook_refused (
	id      INTEGER PRIMARY KEY AUTOINCREMENT,
	at      INTEGER NOT NULL,
	remote  TEXT NOT NULL,
	webhook TEXT NOT NULL,
	status  INTEGER NOT NULL,
	reason  TEXT NOT NULL,
	hint    TEXT NOT NULL,
	headers TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS stairhook_refused_at ON stairhook_refused (at);
CREATE TABLE IF NOT EXISTS stairhook_key_use (
	webhook TEXT NOT NULL,
	label   TEXT NOT NULL,
	hour    INTEGER NOT NULL,
	uses    INTEGER NOT NULL,
	last_at INTEGER NOT NULL,
	PRIMARY KEY (webhook, label, hour)
);
CREATE INDEX IF NOT EXISTS stairhook_job_event ON river_job (json_extract(args, '$.event_id'));
CREATE INDEX IF NOT EXISTS stairhook_events_id ON stairhook_events (event_id);`

	postgresConsoleSchema = `CREATE TABLE IF NOT EXISTS stairhook_refused (
	id      BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	at      BIGINT NOT NULL,
	remote  TEXT NOT NULL,
	webhook TEXT NOT NULL,
	status  INTEGER NOT NULL,
	reason  TEXT NOT NULL,
	hint    TEXT NOT NULL,
	headers TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS stairhook_refused_at ON stairhook_refused (at);
CREATE TABLE IF NOT EXISTS stairhook_key_use (
	webhook TEXT NOT NULL,
	label   TEXT NOT NULL,
	hour    BIGINT NOT NULL,
	uses    BIGINT NOT NULL,
	last_at BIGINT NOT NULL,
	PRIMARY KEY (webhook, label, hour)
);
CREATE INDEX IF NOT EXISTS stairhook_job_event ON river_job ((args->>'event_id'));
CREATE INDEX IF NOT EXISTS stairhook_events_id ON stairhook_events (event_id);`
)
