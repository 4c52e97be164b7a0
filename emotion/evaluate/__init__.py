"""`emotion-eval`: metrics, subject-bootstrap intervals, an operating point and a report."""
