#!/usr/bin/env bash
# Issue 21's "installable from the repo" for Java: after `mvn install` (make test) has put
# dev.turnout:turnout-client:1.0.0 into ~/.m2, a throwaway Maven project outside the repository
# depends on it as the README says, compiles examples/Chat.java and runs it against the live
# sidecar, checking its output: the answer, then "model: <name>, cost: $<formatted>". Without
# TURNOUT_ADDRESS the run (not the build) is skipped, unless TURNOUT_REQUIRE_LIVE=1.
set -euo pipefail

client=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
version=$(sed -n 's:^  <version>\(.*\)</version>$:\1:p' "$client/pom.xml" | head -n 1)
work=$(mktemp -d "${TMPDIR:-/tmp}/turnout-java-consumer.XXXXXX")
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/src/main/java"
cp "$client/examples/Chat.java" "$work/src/main/java/"
cp -r "$client/.mvn" "$work/"
# The plugins the consumer's build uses, at the client's pinned versions.
plugin() {
  printf '<plugin><groupId>org.apache.maven.plugins</groupId><artifactId>%s</artifactId><version>%s</version></plugin>\n' \
    "$1" "$(grep -A1 "<artifactId>$1</artifactId>" "$client/pom.xml" | sed -n 's:.*<version>\(.*\)</version>.*:\1:p' | head -n 1)"
}
cat >"$work/pom.xml" <<POM
<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>com.example</groupId>
  <artifactId>chat</artifactId>
  <version>1</version>
  <properties>
    <maven.compiler.release>17</maven.compiler.release>
    <project.build.sourceEncoding>UTF-8</project.build.sourceEncoding>
  </properties>
  <dependencies>
    <dependency>
      <groupId>dev.turnout</groupId>
      <artifactId>turnout-client</artifactId>
      <version>$version</version>
    </dependency>
  </dependencies>
  <build><plugins>
    $(plugin maven-resources-plugin)
    $(plugin maven-compiler-plugin)
    $(plugin maven-dependency-plugin)
  </plugins></build>
</project>
POM
cd "$work"
if ! got=$(mvn -q -o compile dependency:build-classpath -Dmdep.outputFile=classpath.txt 2>&1); then
  printf 'clients/java: a project depending on dev.turnout:turnout-client:%s did not build:\n%s\n' "$version" "$got" >&2
  exit 1
fi
classpath="target/classes:$(cat classpath.txt)"
echo "clients/java: a Maven project outside the repository compiled the example against dev.turnout:turnout-client:$version"

bash "$client/../scripts/run-example.sh" java java -cp "$classpath" Chat
