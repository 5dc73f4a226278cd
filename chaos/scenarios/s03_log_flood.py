NUMBER = 3
TITLE = "s03_log_flood (todo)"
GUARANTEE = ""


def run(ctx):
    from harness import Skip
    raise Skip("not written yet")
