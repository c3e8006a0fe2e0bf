"""What the history holds and how it is read: the record format, the history
reader, the open-job index and the submission journal."""
