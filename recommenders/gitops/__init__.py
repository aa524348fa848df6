"""`kubetune pr`: propose recommendations to a GitOps repository (locate, edit, git, forge, body)."""
