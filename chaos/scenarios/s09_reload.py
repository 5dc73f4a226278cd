NUMBER = 9
TITLE = "s09_reload (todo)"
GUARANTEE = ""


def run(ctx):
    from harness import Skip
    raise Skip("not written yet")
