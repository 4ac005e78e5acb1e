"""Test boilerplate shared by every package's BUILD file."""

def sluice_cc_test(name, deps = [], srcs = None, **kwargs):
    """A GoogleTest unit test NAME.cc (unless srcs says otherwise), with
    Abseil and gtest_main."""
    native.cc_test(
        name = name,
        srcs = srcs if srcs != None else [name + ".cc"],
        deps = deps + ["@system//:absl", "@system//:gtest_main"],
        **kwargs
    )

def sources(name = "sources"):
    """Every C++ source of the package, for the suite-wide format check."""
    native.filegroup(
        name = name,
        srcs = native.glob(["**/*.cc", "**/*.h"]),
        visibility = ["//tests:__pkg__"],
    )

def postfix_sh_test(name, src, data = []):
    """An integration test tests/postfix/SRC with a private Postfix on
    127.0.0.1 (tests/postfix/env.sh): large, local, tagged postfix."""
    native.sh_test(
        name = name,
        size = "large",
        srcs = ["postfix/" + src],
        data = ["postfix/env.sh"] + data,
        tags = ["local", "postfix"],
    )
