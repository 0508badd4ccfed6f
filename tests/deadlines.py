"""The write deadline of the tests' services and servers.

Most tests are not about the deadline (the outage tests build their own services, or start
their server without this, and keep the 0.75 s default they test): on a busy machine a commit
slower than the default would queue a row in the outbox that a test then looks for in the
table or the history, so they wait longer.
"""

PATIENT_WRITE_DEADLINE_S = 30.0
