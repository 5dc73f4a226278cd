NUMBER = 5
TITLE = "s05_stuck (todo)"
GUARANTEE = ""


def run(ctx):
    from harness import Skip
    raise Skip("not written yet")
