NUMBER = 4
TITLE = "s04_disk_full (todo)"
GUARANTEE = ""


def run(ctx):
    from harness import Skip
    raise Skip("not written yet")
