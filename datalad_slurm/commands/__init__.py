"""The DataLad commands of the extension: thin interfaces over generators."""
