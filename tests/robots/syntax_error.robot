*** Settings ***
Library           OperatingSystem
Timeout Setting   1 minute

*** Tasks ***
Broken task
    Log    before the loop
    FOR    ${item}    IN    a    b
        Log    ${item}

*** Unknown Section ***
nothing here
