"""All-or-nothing CSV imports into the primary.

`importer` (`import_transactions`, `import_labels`: the entry points and their policy),
`csv_rows` (a file's rows in chunks, with their line numbers), `validation` (field checks per
row), `check` (the checking child process), `bulk_load` (`LOAD DATA LOCAL` chunks).
"""
