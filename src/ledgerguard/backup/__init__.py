"""Backups and point-in-time recovery: hot physical backups of the replica (`mariadb-backup`)
or logical ones (`mariadb-dump` / `mysqldump`), a continuous binlog archive of the primary
(`mariadb-binlog` / `mysqlbinlog`), retention, verify and restore.

Modules: `tools` (the Debian programs and their option files), `manifest` (what a backup holds),
`create`, `logical` (the dump method and every tool's command line), `catalog` (list, newest,
verified marks), `binlog_file` (reading archived binlogs of both flavours), `archive` (segments
of archived binlogs), `archiver` (the archiver process), `retention`, `scratch` (a throw-away
server on a restored datadir), `external` (an external scratch server, Compose), `verify`,
`plan` (the recovery window and what a restore replays), `restore`, `replace` (restore
--replace), `metrics`. GTID sets: `ledgerguard.db.gtid`.
"""
