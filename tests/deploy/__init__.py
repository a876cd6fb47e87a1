"""The deployment files: the Dockerfile, deploy/compose.yaml and deploy/waypost.service."""
