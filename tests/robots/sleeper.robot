*** Tasks ***
Wait for the portal
    Log To Console    waiting
    Sleep    30s
