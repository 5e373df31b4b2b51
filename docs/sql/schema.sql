-- An example schema for hato's [sql] lookup tables, in the shape
-- postfixadmin uses (domain, mailbox, alias), trimmed to what mail routing
-- needs.  It runs unchanged on PostgreSQL and SQLite:
--   psql -d mail -f schema.sql        sqlite3 /var/lib/hato/mail.sqlite < schema.sql
-- Addresses and domains are stored in lower case: hato asks in lower case.
-- The queries that go with it are in hato-sql.conf, next to this file.

-- The local domains (domain_query).
CREATE TABLE domain (
	domain VARCHAR(255) PRIMARY KEY,
	description VARCHAR(255) NOT NULL DEFAULT '',
	active BOOLEAN NOT NULL DEFAULT TRUE
);

-- The mailboxes (mailbox_query): username is the whole address, as
-- postfixadmin and Dovecot's SQL passdb use it; password is for Dovecot
-- (hato never reads it).
CREATE TABLE mailbox (
	username VARCHAR(255) PRIMARY KEY,
	password VARCHAR(255) NOT NULL DEFAULT '',
	name VARCHAR(255) NOT NULL DEFAULT '',
	local_part VARCHAR(64) NOT NULL,
	domain VARCHAR(255) NOT NULL REFERENCES domain (domain),
	active BOOLEAN NOT NULL DEFAULT TRUE
);

-- The aliases (alias_query, sender_query): goto holds one target or
-- several separated by commas; a target may be remote.  An alias whose
-- goto names its own address too keeps a copy in its mailbox.
CREATE TABLE alias (
	address VARCHAR(255) PRIMARY KEY,
	goto TEXT NOT NULL,
	domain VARCHAR(255) NOT NULL REFERENCES domain (domain),
	active BOOLEAN NOT NULL DEFAULT TRUE
);
