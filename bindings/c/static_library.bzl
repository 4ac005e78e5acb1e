"""static_library: one archive (libNAME.a) of every object a cc_library
links, transitively, with the link flags of the system libraries it needs
(for pkg-config's Libs.private) in NAME.libs. Bazel 4.2 has no
cc_static_library."""

def _static_library_impl(ctx):
    objects = []
    flags = []
    for dep in ctx.attr.deps:
        for li in dep[CcInfo].linking_context.linker_inputs.to_list():
            for f in li.user_link_flags:
                if f not in flags:
                    flags.append(f)
            for lib in li.libraries:
                objects.extend(lib.pic_objects if lib.pic_objects else lib.objects)
    archive = ctx.actions.declare_file("lib%s.a" % ctx.attr.library_name)
    libs = ctx.actions.declare_file("%s.libs" % ctx.attr.library_name)
    # q, not r: members of the same base name from different packages both stay.
    ctx.actions.run_shell(
        inputs = objects,
        outputs = [archive],
        command = "rm -f %s && ar qcD %s %s && ranlib -D %s" % (
            archive.path,
            archive.path,
            " ".join([o.path for o in objects]),
            archive.path,
        ),
        mnemonic = "StaticLibrary",
    )
    ctx.actions.write(libs, " ".join(flags + ctx.attr.extra_libs) + "\n")
    return [DefaultInfo(
        files = depset([archive, libs]),
        runfiles = ctx.runfiles(files = [archive, libs]),
    )]

static_library = rule(
    implementation = _static_library_impl,
    attrs = {
        "deps": attr.label_list(providers = [CcInfo]),
        "library_name": attr.string(mandatory = True),
        "extra_libs": attr.string_list(),
    },
)
