// glue tests; filled below
