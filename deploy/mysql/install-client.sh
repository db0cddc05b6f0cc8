#!/bin/sh
# MySQL's own client programs (mysqldump, mysqlbinlog, mysql; 8.4 LTS) and zstd, from MySQL's APT
# repository, as the images' Debian has none: the logical backup method and the binlog archive
# use MySQL's flags (--source-data, --set-gtid-purged, --exclude-gtids), which MariaDB's tools
# lack. Run as root at image build time by deploy/Dockerfile (backup-tools) and
# deploy/airflow/Dockerfile.
set -eu
apt-get update
apt-get install -y --no-install-recommends ca-certificates curl gnupg zstd
curl -fsSL https://repo.mysql.com/RPM-GPG-KEY-mysql-2023 | gpg --dearmor -o /usr/share/keyrings/mysql.gpg
. /etc/os-release
echo "deb [signed-by=/usr/share/keyrings/mysql.gpg] http://repo.mysql.com/apt/debian ${VERSION_CODENAME} mysql-8.4-lts" \
    > /etc/apt/sources.list.d/mysql.list
apt-get update
apt-get install -y --no-install-recommends mysql-community-client
rm -rf /var/lib/apt/lists/*
