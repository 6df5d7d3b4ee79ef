"""Dialects: the same stored events spoken to clients that expect another wire format.

`native`, `valuecell` (ValueCell's own web frontend, under `/api/v1/`) and
`agui` (AG-UI clients, under `/ag-ui/`): translators fed by the same follower,
with the same cursor; see docs/dialects.md.
"""
