c = get_config()  # noqa: F821
c.IPKernelApp.matplotlib = "inline"
