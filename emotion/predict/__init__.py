"""`emotion-predict`: photos, folders, zip archives and videos to class probabilities."""
