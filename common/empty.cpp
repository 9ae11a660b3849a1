// Placeholder so a module library with no sources yet still builds.
