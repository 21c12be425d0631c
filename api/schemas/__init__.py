"""Response and request bodies of the API, one module per resource, apart from storage rows."""
