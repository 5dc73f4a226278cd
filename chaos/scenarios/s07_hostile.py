NUMBER = 7
TITLE = "s07_hostile (todo)"
GUARANTEE = ""


def run(ctx):
    from harness import Skip
    raise Skip("not written yet")
