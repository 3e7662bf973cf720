"""Outbound integrations (CRM, SMS, email, Slack) with recorded delivery attempts.

Not built yet: no issue has asked for it so far (see the README's "What is built").
"""
