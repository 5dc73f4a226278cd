NUMBER = 12
TITLE = "s12_exhaustion (todo)"
GUARANTEE = ""


def run(ctx):
    from harness import Skip
    raise Skip("not written yet")
