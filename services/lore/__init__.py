"""LORE: every AI session from every platform, archived per client in git, accounted, and searchable.

    importers/   one adapter per platform (Claude Code, Codex CLI, ChatGPT export, Gemini Takeout)
    model.py     the canonical session every importer produces
    redact.py    secrets out before any byte is written
    clients.py   which client a session belongs to (rules file)
    archive.py   lore.session/v1 YAML files, one git repository per client
    index.py     the SQLite index (FTS5 search, per-call usage, import state); a cache, rebuildable
    run.py       an import run: discover, parse, redact, write, index, commit
    search.py, usage.py, knowledge.py   what the CLI and the bot ask for
"""
