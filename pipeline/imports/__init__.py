"""Importing opportunities, with their accounts and contacts, from the CSV exports of
Salesforce, HubSpot and Pipedrive:

- `reading`: the bytes to a header and rows (encoding, separator, footer lines);
- `vendors`: each system's column titles and stock stage names;
- `parsing`: rows to values (US or German dates and numbers) and each row's errors;
- `preview`: what the page shows before committing;
- `commit`: the clean rows into the database, in one transaction, by the worker.
"""
