"""Experience layer: role-scoped GraphQL views, BI exports, the event feed and the dashboard."""
