"""Named published weights and the checkpoint layouts the tool reads and writes."""
