"""HTTP plumbing shared by every domain: problem details, authentication, pagination."""
