"""Media handled by the product: files stored once, uploaded to WeCom when a message needs them,
their temporary media ids cached and renewed before WeCom's 3-day expiry."""
