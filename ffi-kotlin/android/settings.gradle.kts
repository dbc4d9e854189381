// Android library module of hush (the AAR). Not built in CI: there is no Android SDK on the CI
// machine. See ffi-kotlin/README.md, "Android".
pluginManagement {
    repositories {
        google()
        mavenCentral()
        gradlePluginPortal()
    }
}

dependencyResolutionManagement {
    repositories {
        google()
        mavenCentral()
    }
}

rootProject.name = "hush-android"
