#!/bin/sh
# Runs the pinned Bicep CLI (NuGet package Azure.Bicep.CommandLine.linux-x64), fetching it on first use
# with `dotnet restore` into the git-ignored .bicep/ folder. Usage: scripts/bicep.sh build|lint|... ARGS
set -eu
root=$(cd "$(dirname "$0")/.." && pwd)
project="$root/infra/tools/bicep-cli.csproj"
package=azure.bicep.commandline.linux-x64
# The version lives only in the project file.
version=$(sed -n 's/.*Include="Azure\.Bicep\.CommandLine\.linux-x64" Version="\[\([0-9.]*\)\]".*/\1/p' "$project")
if [ -z "$version" ]; then
  echo "bicep.sh: no pinned Azure.Bicep.CommandLine.linux-x64 version found in $project" >&2
  exit 2
fi
if [ "$(uname -s)-$(uname -m)" != "Linux-x86_64" ]; then
  echo "bicep.sh: the pinned compiler package is for linux-x64 only; on $(uname -s)-$(uname -m) use 'az bicep' instead" >&2
  exit 2
fi
exe="$root/.bicep/packages/$package/$version/tools/bicep"
if [ ! -x "$exe" ]; then
  if ! command -v dotnet >/dev/null 2>&1; then
    echo "bicep.sh: the Bicep compiler $version is not in .bicep/ and cannot be fetched: the dotnet SDK is not installed" >&2
    exit 127
  fi
  if ! dotnet restore "$project" --nologo --verbosity quiet --disable-build-servers >&2; then
    echo "bicep.sh: 'dotnet restore $project' could not fetch Azure.Bicep.CommandLine.linux-x64 $version (is a NuGet source reachable?)" >&2
    exit 127
  fi
  if [ ! -f "$exe" ]; then
    echo "bicep.sh: restore finished but $exe is missing" >&2
    exit 127
  fi
  [ -x "$exe" ] || chmod u+x "$exe"
fi
exec "$exe" "$@"
