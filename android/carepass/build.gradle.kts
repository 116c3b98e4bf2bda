import org.jetbrains.kotlin.gradle.dsl.JvmTarget

plugins {
    id("com.android.library")
    id("org.jetbrains.kotlin.android")
}

// Keep in step with <jna.version> and <kotlinx.coroutines.version> in ../pom.xml.
val jnaVersion = "5.19.1"
val coroutinesVersion = "1.10.2"
val junitVersion = "5.14.4"

android {
    namespace = "app.carepass"
    compileSdk = 35

    defaultConfig {
        minSdk = 24
        consumerProguardFiles("consumer-rules.pro")
        ndk {
            // The ABIs scripts put libcarepass_ffi.so under src/main/jniLibs for.
            abiFilters += listOf("arm64-v8a", "armeabi-v7a", "x86_64")
        }
    }

    buildTypes {
        release {
            // A library does not shrink itself; consumers apply consumer-rules.pro.
            isMinifyEnabled = false
        }
    }

    compileOptions {
        sourceCompatibility = JavaVersion.VERSION_17
        targetCompatibility = JavaVersion.VERSION_17
    }

    sourceSets {
        getByName("main") {
            // Hand-written facade (src/main/kotlin, pure JVM, also built and tested by Maven),
            // the Android-only adapters (src/androidMain/kotlin: Keystore, Logcat; Gradle only)
            // and the uniffi-generated bindings.
            java.srcDirs("src/main/kotlin", "src/androidMain/kotlin", "../../bindings/generated/kotlin")
            // <abi>/libcarepass_ffi.so, filled by the native build script.
            jniLibs.srcDirs("src/main/jniLibs")
        }
        getByName("test") {
            java.srcDirs("src/test/kotlin")
        }
    }

    packaging {
        jniLibs {
            // Store .so files uncompressed and page-aligned (16 KB pages),
            // loaded straight from the APK.
            useLegacyPackaging = false
        }
    }

    testOptions {
        unitTests.all { test ->
            test.useJUnitPlatform()
            // Same defaults as the Maven host build (pom.xml): host libcarepass_ffi from cargo.
            val root = rootProject.projectDir.parentFile
            test.systemProperty("jna.library.path", File(root, "target/debug").path)
            test.systemProperty("carepass.sandbox.bin", File(root, "target/debug/carepass-sandbox").path)
            test.systemProperty("carepass.vectors.dir", File(root, "tests/vectors").path)
        }
    }
}

kotlin {
    compilerOptions {
        jvmTarget.set(JvmTarget.JVM_17)
    }
}

dependencies {
    // The AAR carries libjnidispatch.so for each Android ABI; the plain jar does not.
    implementation("net.java.dev.jna:jna:$jnaVersion@aar")
    api("org.jetbrains.kotlinx:kotlinx-coroutines-android:$coroutinesVersion")

    // Local unit tests run on the host JVM, which needs JNA's desktop natives (plain jar).
    testImplementation("net.java.dev.jna:jna:$jnaVersion")
    testImplementation(platform("org.junit:junit-bom:$junitVersion"))
    testImplementation("org.junit.jupiter:junit-jupiter")
    testRuntimeOnly("org.junit.platform:junit-platform-launcher")
    testImplementation("org.jetbrains.kotlinx:kotlinx-coroutines-test:$coroutinesVersion")
    // kotlin.test assertions on JUnit 5 (version from the Kotlin plugin).
    testImplementation(kotlin("test-junit5"))
}
