"""Backups and point-in-time recovery: hot physical backups of the replica (`mariadb-backup`),
a continuous binlog archive of the primary (`mariadb-binlog`), retention, verify and restore.

Modules: `tools` (the Debian programs and their option files), `manifest` (what a backup holds),
`create`, `catalog` (list, newest, verified marks), `binlog_file` (reading archived binlogs),
`archive` (segments of archived binlogs), `archiver` (the archiver process), `retention`, `scratch` (a throw-away server on a restored
datadir), `verify`, `restore`, `replace` (restore --replace), `metrics`.
"""
