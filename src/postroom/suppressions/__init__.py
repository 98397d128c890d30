"""Each tenant's suppression list: addresses never to be mailed again."""
