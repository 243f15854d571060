"""Group QR codes (群活码), a sub-domain of acquisition: ``services`` (writes, WeCom calls),
``selectors`` (reads), ``views`` and ``urls`` (the console page, mounted under /channels/groups/)."""
