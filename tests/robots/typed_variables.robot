*** Settings ***
Documentation     Checks that variables from the node arrive with their types.
Library           Collections
Library           interlock_rpa.Outputs

*** Variables ***
${count}          not given
@{regions}        not given
${greeting}       not given

*** Tasks ***
Check variable types
    Should Be Equal    ${{ type($count).__name__ }}      int
    Should Be Equal    ${{ type($regions).__name__ }}    list
    Should Be Equal    ${{ type($settings).__name__ }}    DotDict
    Should Be Equal As Integers    ${count}    ${settings.batch}
    ${doubled}=    Evaluate    $count * 2
    Set Interlock Outputs    doubled=${doubled}    regions=${regions}
    ...    greeting=${greeting}    region_count=${{ len($regions) }}
