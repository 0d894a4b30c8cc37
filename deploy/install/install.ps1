# Forewarn agent installer for Windows, served by the collector at
# https://COLLECTOR:PORT/install.ps1. Run in an elevated PowerShell:
#
#   powershell -ExecutionPolicy Bypass -File install.ps1 -Url https://COLLECTOR:PORT -Fingerprint sha256:HEX -Token fwt_...
#
# The same steps as install.sh, for the MSI: pin the CA by fingerprint,
# stop if this machine is already enrolled, check the token, download the
# newest signed MSI over TLS trusting the pinned CA only, verify its
# signature with minisign.exe when it is installed, then
# `msiexec /qn /i … COLLECTOR_URL= ENROLL_TOKEN= CA_FINGERPRINT=`, which
# enrolls and starts the service. Downloads use curl.exe (Windows 10 1803
# and later). This script was not run on Windows by the project's tests;
# see docs/install.md.
param(
    [Parameter(Mandatory = $true)][string]$Url,
    [Parameter(Mandatory = $true)][string]$Fingerprint,
    [string]$Token = $env:FOREWARN_ENROLL_TOKEN,
    [string]$ReleaseKey = '',
    # Refuse to install when minisign.exe is not there to check the signature.
    [switch]$RequireSignature
)
$ErrorActionPreference = 'Stop'

function Say([string]$m) { Write-Host "forewarn install: $m" }
function Die([string]$m) { Write-Host "forewarn install: error: $m" -ForegroundColor Red; exit 1 }

$principal = New-Object Security.Principal.WindowsPrincipal([Security.Principal.WindowsIdentity]::GetCurrent())
if (-not $principal.IsInRole([Security.Principal.WindowsBuiltInRole]::Administrator)) {
    Die 'run it from an elevated PowerShell: it installs a service'
}
if ($Url -notmatch '^https://') { Die "-Url must start with https://, not $Url" }
$Url = $Url.TrimEnd('/')
$pin = ($Fingerprint -replace '^(?i)sha256:', '' -replace ':', '').ToLower()
if ($pin -notmatch '^[0-9a-f]{64}$') { Die "-Fingerprint must be sha256: and 64 hex digits, not $Fingerprint" }
if (-not (Get-Command curl.exe -ErrorAction SilentlyContinue)) { Die 'curl.exe is needed (Windows 10 1803 and later have it)' }

$work = Join-Path $env:TEMP ("forewarn-install-" + [guid]::NewGuid())
New-Item -ItemType Directory -Path $work | Out-Null
try {
    # 1. The CA, checked against the pin (this one request cannot be checked by TLS).
    & curl.exe -sS --no-alpn --insecure --max-time 30 -o "$work\ca.pem" "$Url/ca.pem"
    if ($LASTEXITCODE -ne 0) { Die "cannot reach the collector at $Url; nothing was installed" }
    $b64 = ((Get-Content "$work\ca.pem" -Raw) -replace '-----[A-Z ]+-----', '' -replace '\s', '')
    $der = [Convert]::FromBase64String($b64)
    $seen = -join ([Security.Cryptography.SHA256]::Create().ComputeHash($der) | ForEach-Object { $_.ToString('x2') })
    if ($seen -ne $pin) {
        Die "the collector at $Url presents CA sha256:$seen, not the -Fingerprint sha256:$pin; wrong fingerprint, or the connection is intercepted; nothing was installed"
    }
    Say 'collector CA matches the fingerprint'

    # GET/POST to the collector, trusting the pinned CA only; an HTTP error
    # stops with the collector's JSON "error".
    function Get-FromCollector([string]$Path, [string]$Out, [string[]]$Extra = @()) {
        $code = & curl.exe -sS --no-alpn --ssl-no-revoke --max-time 300 --cacert "$work\ca.pem" -o $Out -w '%{http_code}' @Extra "$Url$Path"
        if ($LASTEXITCODE -ne 0) { Die "request to $Url$Path failed; nothing was installed" }
        if ($code -ne '200') {
            $why = try { (Get-Content $Out -Raw | ConvertFrom-Json).error } catch { 'no reason given' }
            Die "$Url$Path answered ${code}: $why; nothing was installed"
        }
    }

    # 2. Already enrolled?
    $identity = Join-Path $env:ProgramData 'Forewarn\identity.json'
    if (Test-Path $identity) {
        $id = (Get-Content $identity -Raw | ConvertFrom-Json).agent_id
        Say "the agent is already enrolled (agent $id, $identity): nothing installed, not enrolled again"
        Start-Service forewarn-agent -ErrorAction SilentlyContinue
        exit 0
    }

    # 3. May the token enroll? (uses nothing up)
    if (-not $Token) { Die '-Token is required (or FOREWARN_ENROLL_TOKEN)' }
    if ($Token -notmatch '^[A-Za-z0-9_-]+$') { Die '-Token has characters no enrollment token has; copy it again' }
    [IO.File]::WriteAllText("$work\check.json", "{""token"":""$Token""}")
    Get-FromCollector '/enroll/check' "$work\grant.json" @('-X', 'POST', '-H', 'content-type: application/json', '--data-binary', "@$work\check.json")
    Say ("token accepted for tenant " + (Get-Content "$work\grant.json" -Raw | ConvertFrom-Json).tenant)

    # 4. The newest signed MSI for this CPU.
    $arch = if ($env:PROCESSOR_ARCHITECTURE -eq 'ARM64') { 'aarch64' } else { 'x86_64' }
    Get-FromCollector '/download/index.txt' "$work\index.txt"
    $line = Get-Content "$work\index.txt" | Where-Object { $f = $_ -split "`t"; $f[0] -eq 'msi' -and $f[1] -eq 'windows' -and $f[2] -eq $arch } | Select-Object -First 1
    if (-not $line) { Die "the collector offers no signed MSI for windows/$arch; nothing was installed" }
    $file = ($line -split "`t")[4]
    if ($file -notmatch '^[A-Za-z0-9][A-Za-z0-9._+-]*$') { Die "the collector named an unsafe file: $file" }
    Say "downloading $file"
    Get-FromCollector "/download/$file" "$work\$file"
    Get-FromCollector "/download/$file.minisig" "$work\$file.minisig"
    if (Get-Command minisign.exe -ErrorAction SilentlyContinue) {
        if (-not $ReleaseKey) {
            Get-FromCollector '/download/release.pub' "$work\release.pub"
            $ReleaseKey = (Get-Content "$work\release.pub" | Where-Object { $_ -notmatch '^untrusted comment:' } | Select-Object -First 1).Trim()
        }
        $comment = & minisign.exe -V -Q -P $ReleaseKey -m "$work\$file" -x "$work\$file.minisig"
        if ($LASTEXITCODE -ne 0) { Die "the signature of $file does not verify; nothing was installed" }
        if (" $comment " -notlike "* file:$file *") { Die "the signature of $file was made for another file ($comment)" }
        Say "signature verified ($comment)"
    } elseif ($RequireSignature) {
        Die 'minisign.exe is not installed and -RequireSignature was given; nothing was installed'
    } else {
        Say 'minisign.exe is not installed: the MSI is trusted because it came over TLS pinned to the collector CA, and the collector serves only artifacts whose signature it verified (docs/install.md)'
    }

    # 5. Install; the MSI enrolls and starts the service.
    $log = Join-Path $env:TEMP 'forewarn-agent-msi.log'
    $p = Start-Process msiexec.exe -Wait -PassThru -ArgumentList @(
        '/qn', '/i', "`"$work\$file`"", "COLLECTOR_URL=$Url", "ENROLL_TOKEN=$Token", "CA_FINGERPRINT=sha256:$pin", '/l*v', "`"$log`"")
    if ($p.ExitCode -ne 0) { Die "msiexec failed with $($p.ExitCode); see $log" }
    Say "installed and enrolled; service forewarn-agent started"
}
finally {
    Remove-Item -Recurse -Force $work -ErrorAction SilentlyContinue
}
