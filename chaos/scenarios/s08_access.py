NUMBER = 8
TITLE = "s08_access (todo)"
GUARANTEE = ""


def run(ctx):
    from harness import Skip
    raise Skip("not written yet")
