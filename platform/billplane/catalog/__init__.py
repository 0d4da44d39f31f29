"""The tenant's catalog: products and the plans (prices) they are sold at."""
