//! The node tools the sandbox lints and tests TypeScript and React Native code with:
//! TypeScript's compiler, eslint with typescript-eslint, the type definitions of React and
//! Node, and React itself (components are imported by their tests). Installed from the npm
//! registry at pinned versions into a cache on this machine, once, then copied into the
//! sandbox image by `ecca images build`.
//!
//! React Native itself is not installed (hundreds of megabytes and native code); a small
//! package of ecca's own stands in for it in the sandbox: type declarations of the core
//! primitives for the compiler, and plain function components for node's test runner. The
//! delivered project depends on the real `react-native` and `expo`.

use std::path::{Path, PathBuf};
use std::process::Command;

/// Every package, at the version installed. Changing one changes the cache directory and
/// the sandbox image's label, so both are built again.
pub const PINS: &[(&str, &str)] = &[
    ("typescript", "5.6.3"),
    ("eslint", "9.14.0"),
    ("typescript-eslint", "8.14.0"),
    ("@types/react", "18.3.12"),
    ("@types/node", "22.9.0"),
    ("react", "18.3.1"),
];

/// Where the tools are inside the sandbox image.
pub const IN_IMAGE: &str = "/opt/node-tools";

/// The label the sandbox image carries: which pins its node tools are.
pub const LABEL: &str = "ecca.node-tools";

/// A short name of the pins, for the cache directory and the image label.
pub fn pins_id() -> String {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    PINS.hash(&mut h);
    SHIM_INDEX_JS.hash(&mut h);
    SHIM_INDEX_D_TS.hash(&mut h);
    format!("{:016x}", h.finish())
}

/// `$XDG_CACHE_HOME/ecca/node-tools-<pins>`, else under `~/.cache`.
pub fn cache_dir() -> Option<PathBuf> {
    let base = std::env::var_os("XDG_CACHE_HOME")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))?;
    Some(base.join("ecca").join(format!("node-tools-{}", pins_id())))
}

/// The installed tools' directory (holding `node_modules`), when the cache is complete.
pub fn installed() -> Option<PathBuf> {
    let dir = cache_dir()?;
    dir.join("node_modules/.ecca-complete")
        .is_file()
        .then_some(dir)
}

/// Installs the tools into the cache unless they are there; returns their directory. A
/// failed install leaves nothing behind (it happens in a directory renamed into place
/// only when complete).
pub fn ensure(progress: &dyn Fn(&str)) -> Result<PathBuf, String> {
    if let Some(dir) = installed() {
        progress(&format!("node tools: cached in {}", dir.display()));
        return Ok(dir);
    }
    let dir = cache_dir()
        .ok_or("neither XDG_CACHE_HOME nor HOME is set, so there is no cache for the node tools")?;
    let npm = which("npm").ok_or(
        "npm is not installed; install it (Debian: apt-get install npm) and run `ecca images build` again",
    )?;
    let parent = dir
        .parent()
        .ok_or("the node tools' cache directory has no parent")?;
    std::fs::create_dir_all(parent)
        .map_err(|e| format!("could not create {}: {e}", parent.display()))?;
    let partial = parent.join(format!(".partial-{}-{}", pins_id(), std::process::id()));
    let _ = std::fs::remove_dir_all(&partial);
    std::fs::create_dir_all(&partial)
        .map_err(|e| format!("could not create {}: {e}", partial.display()))?;
    let specs: Vec<String> = PINS.iter().map(|(p, v)| format!("{p}@{v}")).collect();
    progress(&format!(
        "node tools: installing {} from npm",
        specs.join(" ")
    ));
    let out = Command::new(npm)
        .args([
            "install",
            "--no-audit",
            "--no-fund",
            "--no-package-lock",
            "--ignore-scripts",
            "--loglevel=error",
            "--prefix",
        ])
        .arg(&partial)
        .args(&specs)
        .output()
        .map_err(|e| format!("could not run npm: {e}"))?;
    if !out.status.success() {
        let _ = std::fs::remove_dir_all(&partial);
        let err = String::from_utf8_lossy(&out.stderr);
        let last = err
            .lines()
            .rev()
            .find(|l| !l.trim().is_empty())
            .unwrap_or("");
        return Err(format!(
            "npm could not install the node tools ({last}); check that the npm registry is reachable and run `ecca images build` again"
        ));
    }
    write_shim(&partial.join("node_modules/react-native"))?;
    std::fs::write(partial.join("node_modules/.ecca-complete"), pins_id())
        .map_err(|e| format!("could not mark the node tools complete: {e}"))?;
    if let Err(e) = std::fs::rename(&partial, &dir) {
        let _ = std::fs::remove_dir_all(&partial);
        // Another build may have finished first: its copy is as good.
        if installed().is_none() {
            return Err(format!(
                "could not move the node tools into {}: {e}",
                dir.display()
            ));
        }
    }
    progress(&format!("node tools: installed in {}", dir.display()));
    Ok(dir)
}

fn which(name: &str) -> Option<PathBuf> {
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|d| d.join(name))
            .find(|p| p.is_file())
    })
}

fn write_shim(dir: &Path) -> Result<(), String> {
    std::fs::create_dir_all(dir).map_err(|e| format!("could not create {}: {e}", dir.display()))?;
    for (name, text) in [
        ("package.json", SHIM_PACKAGE_JSON),
        ("index.js", SHIM_INDEX_JS),
        ("index.d.ts", SHIM_INDEX_D_TS),
    ] {
        std::fs::write(dir.join(name), text)
            .map_err(|e| format!("could not write the react-native stand-in's {name}: {e}"))?;
    }
    Ok(())
}

const SHIM_PACKAGE_JSON: &str = r#"{
  "name": "react-native",
  "version": "0.0.0-ecca-sandbox",
  "description": "ecca's sandbox stand-in for react-native: core primitives typed for tsc and rendered as plain elements under node's test runner. Not the real package.",
  "main": "index.js",
  "types": "index.d.ts"
}
"#;

const SHIM_INDEX_JS: &str = r#"// ecca's sandbox stand-in for react-native (not the real package): each primitive is a
// plain function component, so modules that render them can be imported and their logic
// tested by node's test runner.
"use strict";
const React = require("react");
const primitive = (name) => {
  const C = (props) => React.createElement(name, props, props && props.children);
  C.displayName = name;
  return C;
};
module.exports = {
  View: primitive("View"),
  Text: primitive("Text"),
  TextInput: primitive("TextInput"),
  Pressable: primitive("Pressable"),
  ScrollView: primitive("ScrollView"),
  FlatList: primitive("FlatList"),
  Switch: primitive("Switch"),
  SafeAreaView: primitive("SafeAreaView"),
  StyleSheet: { create: (styles) => styles },
  Platform: { OS: "ios", select: (o) => o.ios ?? o.default },
};
"#;

const SHIM_INDEX_D_TS: &str = r#"// ecca's sandbox stand-in for react-native's types: the core primitives and the props
// small apps use. The delivered project type-checks against the real package.
import type { ReactNode, ReactElement } from "react";

export type StyleValue = Record<string, unknown> | undefined | false | null | StyleValue[];

interface BaseProps {
  style?: StyleValue;
  testID?: string;
  accessibilityLabel?: string;
  children?: ReactNode;
}

export interface ViewProps extends BaseProps {}
export interface TextProps extends BaseProps {
  numberOfLines?: number;
}
export interface TextInputProps extends BaseProps {
  value?: string;
  placeholder?: string;
  onChangeText?: (text: string) => void;
  keyboardType?: "default" | "numeric" | "decimal-pad" | "email-address" | "number-pad";
}
export interface PressableProps extends BaseProps {
  onPress?: () => void;
  disabled?: boolean;
}
export interface SwitchProps extends BaseProps {
  value?: boolean;
  onValueChange?: (value: boolean) => void;
}
export interface FlatListProps<T> extends BaseProps {
  data: readonly T[];
  renderItem: (info: { item: T; index: number }) => ReactElement | null;
  keyExtractor?: (item: T, index: number) => string;
}

export declare function View(props: ViewProps): ReactElement;
export declare function Text(props: TextProps): ReactElement;
export declare function TextInput(props: TextInputProps): ReactElement;
export declare function Pressable(props: PressableProps): ReactElement;
export declare function ScrollView(props: ViewProps): ReactElement;
export declare function SafeAreaView(props: ViewProps): ReactElement;
export declare function Switch(props: SwitchProps): ReactElement;
export declare function FlatList<T>(props: FlatListProps<T>): ReactElement;
export declare const StyleSheet: {
  create<T extends Record<string, Record<string, unknown>>>(styles: T): T;
};
export declare const Platform: {
  OS: "ios" | "android" | "web";
  select<T>(options: { ios?: T; android?: T; web?: T; default?: T }): T | undefined;
};
"#;
