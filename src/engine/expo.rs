//! The Expo project around a React Native task's components: package.json with pinned
//! Expo, React and React Native, app.json, tsconfig.json and an App.tsx that shows every
//! component the task wrote, so the deliverable starts with `npx expo start`. Pure: the
//! files are made from the task's title and the components' paths.

use super::fsm::DeliverableFile;

/// The Expo SDK the project is made for, and the versions it pins with it.
const EXPO: &str = "~52.0.11";
const REACT: &str = "18.3.1";
const REACT_NATIVE: &str = "0.76.3";

/// A component file's exported component name: `components/TipSplitter.tsx` →
/// `TipSplitter`.
fn component_name(path: &str) -> Option<&str> {
    let file = path.rsplit('/').next()?;
    let name = file.strip_suffix(".tsx")?;
    (!name.ends_with(".test") && name.starts_with(|c: char| c.is_ascii_uppercase())).then_some(name)
}

/// `Rork: Tip splitter!` → `rork-tip-splitter`.
fn slug(title: &str) -> String {
    let mut out = String::new();
    for c in title.chars().flat_map(char::to_lowercase) {
        if c.is_ascii_alphanumeric() {
            out.push(c);
        } else if !out.ends_with('-') && !out.is_empty() {
            out.push('-');
        }
    }
    let out = out.trim_end_matches('-');
    if out.is_empty() {
        "app".into()
    } else {
        out.chars().take(48).collect()
    }
}

/// The project files for `title` around the task's files (`written`); none it wrote
/// itself are replaced.
pub fn project_files(title: &str, written: &[DeliverableFile]) -> Vec<DeliverableFile> {
    let has = |p: &str| written.iter().any(|f| f.path == p);
    let slug = slug(title);
    let name = title.replace(['"', '\\'], "");
    let components: Vec<(&str, &str)> = written
        .iter()
        .filter_map(|f| {
            let name = component_name(&f.path)?;
            Some((name, f.path.trim_end_matches(".tsx")))
        })
        .collect();
    let mut out = Vec::new();
    let mut add = |path: &str, content: String| {
        if !has(path) {
            out.push(DeliverableFile {
                path: path.into(),
                content,
            });
        }
    };
    add(
        "package.json",
        format!(
            r#"{{
  "name": "{slug}",
  "version": "1.0.0",
  "private": true,
  "main": "node_modules/expo/AppEntry.js",
  "scripts": {{
    "start": "expo start",
    "android": "expo start --android",
    "ios": "expo start --ios",
    "typecheck": "tsc --noEmit",
    "test": "tsc --outDir .out && node --test .out/"
  }},
  "dependencies": {{
    "expo": "{EXPO}",
    "expo-status-bar": "~2.0.0",
    "react": "{REACT}",
    "react-native": "{REACT_NATIVE}"
  }},
  "devDependencies": {{
    "@types/react": "~18.3.12",
    "@types/node": "^22.9.0",
    "typescript": "~5.6.3"
  }}
}}
"#
        ),
    );
    add(
        "app.json",
        format!(
            r#"{{
  "expo": {{
    "name": "{name}",
    "slug": "{slug}",
    "version": "1.0.0",
    "orientation": "portrait",
    "userInterfaceStyle": "automatic",
    "ios": {{ "supportsTablet": true }},
    "android": {{ "package": "com.example.{}" }}
  }}
}}
"#,
            slug.replace('-', "")
        ),
    );
    add(
        "tsconfig.json",
        r#"{
  "extends": "expo/tsconfig.base",
  "compilerOptions": {
    "strict": true
  }
}
"#
        .into(),
    );
    let imports: String = components
        .iter()
        .map(|(c, path)| format!("import {{ {c} }} from \"./{path}\";\n"))
        .collect();
    let shown: String = components
        .iter()
        .map(|(c, _)| format!("        <{c} />\n"))
        .collect();
    add(
        "App.tsx",
        format!(
            r##"import {{ StatusBar }} from "expo-status-bar";
import {{ SafeAreaView, ScrollView, StyleSheet, Text }} from "react-native";
{imports}
export default function App() {{
  return (
    <SafeAreaView style={{styles.screen}}>
      <ScrollView contentContainerStyle={{styles.content}}>
        <Text style={{styles.title}}>{}</Text>
{shown}      </ScrollView>
      <StatusBar style="auto" />
    </SafeAreaView>
  );
}}

const styles = StyleSheet.create({{
  screen: {{ flex: 1, backgroundColor: "#fff" }},
  content: {{ padding: 20, gap: 12 }},
  title: {{ fontSize: 24, fontWeight: "700" }},
}});
"##,
            name.replace(['{', '}', '<', '>'], "")
        ),
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_app_shows_every_component_and_keeps_what_the_task_wrote() {
        let written = vec![
            DeliverableFile {
                path: "components/TipSplitter.tsx".into(),
                content: String::new(),
            },
            DeliverableFile {
                path: "components/TipSplitter.test.ts".into(),
                content: String::new(),
            },
            DeliverableFile {
                path: "app.json".into(),
                content: "{}".into(),
            },
        ];
        let files = project_files("Rork: tip splitter", &written);
        let paths: Vec<&str> = files.iter().map(|f| f.path.as_str()).collect();
        assert_eq!(paths, ["package.json", "tsconfig.json", "App.tsx"]);
        let app = &files[2].content;
        assert!(app.contains("import { TipSplitter } from \"./components/TipSplitter\";"));
        assert!(app.contains("<TipSplitter />"));
        assert!(files[0].content.contains("\"name\": \"rork-tip-splitter\""));
        assert!(files[0].content.contains("\"expo\": \"~52.0.11\""));
    }
}
