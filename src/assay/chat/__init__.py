"""``assay chat``: a Chainlit front end over assay's client, with history in SQLite.

- app.py      the Chainlit app (run by ``chainlit run``; configured through ASSAY_CHAT_* environment variables)
- launch.py   prepares the app folder and runs the app as a managed child process (ChatApp)
- history.py  the SQLite schema Chainlit's SQLAlchemy data layer needs, created at start
- settings.py the settings panel and how its values become a request
- render.py   LaTeX delimiters and the stats line under each reply
- export.py   Markdown / JSON export, and rebuilding a conversation from stored steps

Example:
    assay chat                      # embedded SmolLM2-135M, http://127.0.0.1:8501
"""
